/** Builds a real multipart/form-data body with the platform's FormData, for inject and fetch. */
export async function multipart (parts: Record<string, string | { bytes: Buffer, filename?: string, type?: string }>): Promise<{ payload: Buffer, headers: Record<string, string> }> {
  const form = new FormData()
  for (const [field, value] of Object.entries(parts)) {
    if (typeof value === 'string') form.append(field, value)
    else form.append(field, new Blob([new Uint8Array(value.bytes)], { type: value.type ?? 'application/octet-stream' }), value.filename ?? '')
  }
  const request = new Request('http://localhost/', { method: 'POST', body: form })
  return { payload: Buffer.from(await request.arrayBuffer()), headers: { 'content-type': request.headers.get('content-type')! } }
}
