# prompt-player: Debian's Node 20 image and Debian's ffmpeg, run as a non-root user.
# NODE_IMAGE: any Debian bookworm image with Node 20.19+ in /usr/local and a user `node` (the tests
# build one with debootstrap where no registry is reachable: test/image/image.test.ts).
ARG NODE_IMAGE=node:20-bookworm-slim
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY service ./service
COPY client ./client
COPY cli ./cli
COPY types ./types
COPY console ./console
COPY scripts/build-console.mjs ./scripts/
RUN npm run build && npm prune --omit=dev

FROM ${NODE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY --chown=node:node prompts ./prompts
ENV NODE_ENV=production \
    PROMPT_PLAYER_HOST=0.0.0.0 \
    PROMPT_PLAYER_PORT=8080 \
    PROMPT_PLAYER_LIBRARY=/app/prompts \
    PROMPT_PLAYER_RTP_PORTS=20000-39999
USER node
# One UDP socket per play: 2,000 plays need more descriptors than the usual 1,024 (run with
# --ulimit nofile=65536:65536; the systemd unit sets LimitNOFILE).
EXPOSE 8080/tcp 20000-39999/udp
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PROMPT_PLAYER_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/service/server.js"]
