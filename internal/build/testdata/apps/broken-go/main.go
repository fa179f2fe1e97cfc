// Command broken does not compile: a type error, so the file still
// passes gofmt.
package main

func main() {
	var port int = "5000"
	_ = port
}
