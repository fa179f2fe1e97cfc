// Answers every request with the dyno's name and the GREETING config var.
const http = require("http");
const port = process.env.PORT;
http
  .createServer((req, res) => {
    res.end(`hello from ${process.env.DYNO}: ${process.env.GREETING} (${process.env.NODE_ENV})\n`);
  })
  .listen(port, () => console.log(`listening on ${port}`));
