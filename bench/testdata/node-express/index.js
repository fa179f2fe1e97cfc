// A web app on express, answering on $PORT.
const express = require("express");
const app = express();
app.get("/", (req, res) => res.send(`hello from ${process.env.DYNO}\n`));
app.listen(process.env.PORT);
