// Parse each file named on the command line with the Go models Modelina generated from the AsyncAPI document
// (package model, encoding/json), as a counterpart's Go system would: the struct its message_type names. One
// line per file, "<type> <the model written back as JSON>", or "FAIL <file>: <why>"; exit 1 when any failed.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"launchrelay.test/model"
)

func main() {
	failed := 0
	for _, file := range os.Args[1:] {
		raw, err := os.ReadFile(file)
		var head struct {
			MessageType string `json:"message_type"`
		}
		if err == nil {
			err = json.Unmarshal(raw, &head)
		}
		types := map[string]any{
			"planned_launch": &model.PlannedLaunch{}, "amendment": &model.Amendment{},
			"cancellation": &model.Cancellation{}, "completed_launch": &model.CompletedLaunch{},
			"acknowledgement": &model.Acknowledgement{}, "receipt": &model.Receipt{},
		}
		names := map[string]string{
			"planned_launch": "PlannedLaunch", "amendment": "Amendment", "cancellation": "Cancellation",
			"completed_launch": "CompletedLaunch", "acknowledgement": "Acknowledgement", "receipt": "Receipt",
		}
		target, known := types[head.MessageType]
		if err == nil && !known {
			err = fmt.Errorf("no type for message_type %q", head.MessageType)
		}
		if err == nil {
			err = json.Unmarshal(raw, target)
		}
		var out []byte
		if err == nil {
			out, err = json.Marshal(target)
		}
		if err != nil {
			failed++
			fmt.Printf("FAIL %s: %v\n", file, err)
			continue
		}
		fmt.Printf("%s %s\n", names[head.MessageType], out)
	}
	if failed > 0 {
		os.Exit(1)
	}
}
