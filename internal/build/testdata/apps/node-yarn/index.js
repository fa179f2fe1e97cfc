// Answers with a dependency's work: ms, installed by yarn.
const http = require("http");
const ms = require("ms");
http.createServer((req, res) => res.end(`yarn app: ${ms(90000)}\n`)).listen(process.env.PORT);
