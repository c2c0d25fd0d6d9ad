# A known, large context (node_modules/ in it) without .dockerignore.
FROM node:22.11.0-slim
WORKDIR /app
COPY . .
USER node
CMD ["node", "index.js"]
