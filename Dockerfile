FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY libs ./libs
COPY services ./services
COPY schema ./schema
RUN npm ci --omit=dev --ignore-scripts=false && npm install --no-save tsx
ENV NODE_ENV=production
EXPOSE 8080
# tini as PID 1 forwards SIGTERM (docker stop) to node and reaps; node runs the service itself, with no
# wrapper process (npx, the tsx CLI) that would swallow the signal.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--import", "tsx", "services/api/src/main.ts"]
