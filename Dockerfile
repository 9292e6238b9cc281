# Build: every dependency, the compiler and the bundler.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig*.json ./
COPY instrumentation/package.json instrumentation/
RUN npm ci --no-audit --no-fund
COPY . .
# The code, and the dashboard's page and bundle (dist/dashboard), as `npm run build` makes them.
RUN npx tsc -b . dashboard && node scripts/build-dashboard.mjs

# Run: production dependencies only (no compiler, test runner or browser driver), the built code,
# and the SQL that start applies (sql/ is found next to dist/).
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY instrumentation/package.json instrumentation/
RUN npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist dist
COPY --from=build /app/instrumentation/dist instrumentation/dist
COPY sql sql
# Not root: a bug or a query that reaches the file system reaches only what this user owns. The
# directories it writes are made here, owned by it, so that a new named volume mounted on one
# takes that owner (docs/operating.md, "Docker").
RUN mkdir -p /var/lib/routewatch/data /var/lib/routewatch/wal \
  && chown -R node:node /var/lib/routewatch && chmod 0700 /var/lib/routewatch/data /var/lib/routewatch/wal
ENV ROUTEWATCH_DATA_DIR=/var/lib/routewatch/data
USER node
EXPOSE 4318
# --initial-old-space-size: see docs/operating.md, "Node's heap and the acknowledgement tail".
CMD ["node", "--initial-old-space-size=128", "dist/cli/main.js", "start"]
