// The style the code already follows: neostandard (what Fastify uses), with typescript-eslint
// for the TypeScript. `npm test` runs it before the tests.
import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tap/**'] }),
  {
    rules: {
      // Long objects put related properties on one line (`{ id, target, frames }`); kept.
      '@stylistic/object-property-newline': 'off',
      // `void promise` marks a promise deliberately not awaited (reply.header, a background task).
      'no-void': ['error', { allowAsStatement: true }],
      // A TypeBox schema and its type share a name (`const Play = Type.Object(...)`,
      // `type Play = Static<typeof Play>`); TypeScript itself refuses real redeclarations.
      '@typescript-eslint/no-redeclare': 'off'
    }
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // `for await (const event of stream) { ...; break }` takes the first event of a stream.
      'no-unreachable-loop': 'off',
      // Loops that wait on a variable a socket's listener sets.
      'no-unmodified-loop-condition': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { varsIgnorePattern: '^_' }]
    }
  },
  {
    // prom-client metrics register themselves with the registry they are given.
    files: ['service/metrics.ts'],
    rules: { 'no-new': 'off' }
  }
]
