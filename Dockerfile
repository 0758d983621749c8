FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY libs ./libs
COPY services ./services
COPY schema ./schema
RUN npm ci --omit=dev --ignore-scripts=false && npm install --no-save tsx
ENV NODE_ENV=production
EXPOSE 8080
CMD ["npx", "tsx", "services/api/src/main.ts"]
