package debimage

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// idRange is a block of subordinate ids from /etc/subuid or /etc/subgid.
type idRange struct{ start, count int }

// subordinateIDs returns the first range file gives the user (by name or
// number).
func subordinateIDs(file, name string, id int) (idRange, error) {
	f, err := os.Open(file)
	if err != nil {
		return idRange{}, fmt.Errorf("unshare mode needs subordinate ids: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(fields) != 3 || (fields[0] != name && fields[0] != strconv.Itoa(id)) {
			continue
		}
		start, err1 := strconv.Atoi(fields[1])
		count, err2 := strconv.Atoi(fields[2])
		if err1 != nil || err2 != nil || count < 1 {
			continue
		}
		return idRange{start, count}, nil
	}
	if err := sc.Err(); err != nil {
		return idRange{}, fmt.Errorf("read %s: %w", file, err)
	}
	return idRange{}, fmt.Errorf("%s has no entry for user %s (%d): unshare mode needs one (see mmdebstrap(1), MODES)", file, name, id)
}

// inUserNamespace wraps c to run as root of a new user namespace in which
// the calling user is root and ids from 1 up are the user's subordinate
// ids: files c makes as root belong to the user, and files it gives other
// owners can be read back from inside with those owners.
func inUserNamespace(c command) (command, error) {
	u, err := user.Current()
	if err != nil {
		return c, err
	}
	uid := os.Getuid()
	uids, err := subordinateIDs("/etc/subuid", u.Username, uid)
	if err != nil {
		return c, err
	}
	gids, err := subordinateIDs("/etc/subgid", u.Username, uid)
	if err != nil {
		return c, err
	}
	args := []string{
		"--map-root-user",
		fmt.Sprintf("--map-users=%d,1,%d", uids.start, uids.count),
		fmt.Sprintf("--map-groups=%d,1,%d", gids.start, gids.count),
		"--", c.name,
	}
	c.args = append(args, c.args...)
	c.name = "unshare"
	return c, nil
}

// RemoveAll removes a build's work directory. As a normal user it does so
// from the user namespace the build used, since a build killed half-way
// may leave files there owned by subordinate ids, which the user cannot
// remove directly.
func RemoveAll(ctx context.Context, dir string) error {
	if os.Geteuid() == 0 {
		return os.RemoveAll(dir)
	}
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	c, err := inUserNamespace(command{name: "rm", args: []string{"-rf", "--", dir}})
	if err != nil {
		return err
	}
	if _, err := run(ctx, discard, c); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
