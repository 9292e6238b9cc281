FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json tsconfig*.json ./
COPY instrumentation/package.json instrumentation/
RUN npm ci --no-audit --no-fund
COPY . .
# The code, and the dashboard's page and bundle (dist/dashboard), as `npm run build` makes them.
RUN npx tsc -b . dashboard && node scripts/build-dashboard.mjs
ENV NODE_ENV=production
EXPOSE 4318
CMD ["node", "dist/cli/main.js", "start"]
