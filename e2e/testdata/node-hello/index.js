// The sample Node.js app of the end-to-end tests.
const http = require("http");
const server = http.createServer((req, res) => {
  res.end(`node says hi from ${process.env.DYNO} env=${process.env.NODE_ENV}\n`);
});
server.listen(process.env.PORT, () => console.log(`listening on ${process.env.PORT}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
