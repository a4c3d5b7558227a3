package localunit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// qmpTimeout bounds one QMP exchange.
const qmpTimeout = 5 * time.Second

// qmp runs one command without arguments on the QMP socket at path (the
// supervisor's working directory makes the path short enough for a unix
// socket). A "quit" whose answer never comes because qemu went first
// counts as done.
func qmp(path, command string) error {
	conn, err := net.DialTimeout("unix", path, qmpTimeout)
	if err != nil {
		return fmt.Errorf("QMP %s: %w", command, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(qmpTimeout))
	dec := json.NewDecoder(conn)
	var greeting struct {
		QMP json.RawMessage `json:"QMP"`
	}
	if err := dec.Decode(&greeting); err != nil || greeting.QMP == nil {
		return fmt.Errorf("QMP %s: no greeting: %v", command, err)
	}
	for _, c := range []string{"qmp_capabilities", command} {
		if err := json.NewEncoder(conn).Encode(map[string]string{"execute": c}); err != nil {
			return fmt.Errorf("QMP %s: %w", c, err)
		}
		if err := qmpAnswer(dec); err != nil {
			if c == "quit" && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
				return nil
			}
			return fmt.Errorf("QMP %s: %w", c, err)
		}
	}
	return nil
}

// qmpAnswer reads messages until the answer to the last command, skipping
// events.
func qmpAnswer(dec *json.Decoder) error {
	for {
		var msg struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
		}
		if err := dec.Decode(&msg); err != nil {
			return err
		}
		switch {
		case msg.Error != nil:
			return fmt.Errorf("%s: %s", msg.Error.Class, msg.Error.Desc)
		case msg.Return != nil:
			return nil
		}
	}
}
