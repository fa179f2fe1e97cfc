// Answers with a dependency's work: ms, installed by pnpm.
const http = require("http");
const ms = require("ms");
http.createServer((req, res) => res.end(`pnpm app: ${ms(90000)}\n`)).listen(process.env.PORT);
