// Command schemagen writes the JSON Schemas of kiln's reports and of
// kiln.yaml into a directory (docs/schemas): go generate ./internal/report.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kiln-images/kiln/internal/report"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: schemagen DIR (run in internal/report)")
		os.Exit(2)
	}
	if err := report.WriteSchemas(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
	fmt.Println("wrote", filepath.Clean(os.Args[1]))
}
