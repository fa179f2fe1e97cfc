package api

import (
	"fmt"
	"math/rand/v2"
)

// Word lists for generated app names ("floating-dragon-4271"), as Heroku
// makes them.
var (
	nameAdjectives = []string{
		"afternoon", "ancient", "autumn", "billowing", "bitter", "blooming", "blue", "bold",
		"brave", "calm", "cold", "cool", "crimson", "damp", "dark", "dawn", "delicate",
		"divine", "dry", "empty", "falling", "fierce", "floating", "fragrant", "frosty",
		"gentle", "glacial", "golden", "green", "hidden", "holy", "icy", "immense", "lingering",
		"little", "lively", "long", "misty", "morning", "muddy", "nameless", "noble", "old",
		"patient", "polished", "proud", "purple", "quiet", "rapid", "red", "restless", "rough",
		"secret", "shy", "silent", "small", "snowy", "solitary", "sparkling", "spring", "still",
		"summer", "sweet", "tranquil", "twilight", "wandering", "weathered", "white", "wild",
		"winter", "wispy", "young",
	}
	nameNouns = []string{
		"bird", "breeze", "brook", "bush", "butterfly", "cherry", "cloud", "darkness", "dawn",
		"dew", "dragon", "dream", "dust", "feather", "field", "fire", "firefly", "flower",
		"fog", "forest", "frog", "frost", "glade", "glitter", "grass", "haze", "hill", "lake",
		"leaf", "meadow", "moon", "morning", "mountain", "night", "paper", "pine", "pond",
		"rain", "resonance", "river", "sea", "shadow", "shape", "silence", "sky", "smoke",
		"snow", "snowflake", "sound", "star", "sun", "sunset", "surf", "thunder", "tree",
		"violet", "voice", "water", "waterfall", "wave", "wildflower", "wind", "wood",
	}
)

// generateName returns a random name of the form adjective-noun-NNNN.
func generateName() string {
	return fmt.Sprintf("%s-%s-%04d",
		nameAdjectives[rand.IntN(len(nameAdjectives))],
		nameNouns[rand.IntN(len(nameNouns))],
		rand.IntN(10000))
}
