package main

func main() {
	var answer int = "forty-two" // does not compile: a string is not an int
	_ = answer
}
