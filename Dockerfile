FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json tsconfig*.json ./
COPY instrumentation/package.json instrumentation/
RUN npm ci --no-audit --no-fund
COPY . .
RUN npx tsc -b
ENV NODE_ENV=production
EXPOSE 4318
CMD ["node", "dist/cli/main.js", "start"]
