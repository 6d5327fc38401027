package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/tether-iot/tether/internal/passwd"
)

const webUsage = `usage: tether web passwd FILE USER

Adds USER to the status page's password file FILE (made, mode 0600, if
missing), or changes its password: the password is asked twice on a
terminal (not echoed), or read from the first line of standard input
otherwise. The hash is bcrypt, as "htpasswd -nB USER" writes it. Give the
file to tether serve with --web-users or web.users_file (docs/GATEWAY.md,
"Access to the page"). The page also reads the lines of tether mqtt passwd
and mosquitto_passwd: one file made with tether mqtt passwd serves the
page, the embedded broker and mosquitto (which do not read bcrypt).
`

func runWeb(_ context.Context, e *env, args []string) error {
	return runPasswd(e, args, "web passwd", webUsage, passwd.Set)
}

// runPasswd runs "tether web passwd" or "tether mqtt passwd" (cmd): it
// sets the password of a user in a file with set, which makes the hash.
func runPasswd(e *env, args []string, cmd, usage string, set func(text []byte, user, pw string) ([]byte, error)) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fmt.Fprint(e.stdout, usage)
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	if args[0] != "passwd" || len(args) != 3 {
		fmt.Fprint(e.stderr, usage)
		return errUsage
	}
	file, user := args[1], args[2]
	pw, err := readPassword(e, user)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	text, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	out, err := set(text, user, pw)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", cmd, file, err)
	}
	if err := os.WriteFile(file, out, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "%s: user %s set\n", file, user)
	return nil
}

// readPassword asks for user's password twice on a terminal, or reads
// the first line of stdin.
func readPassword(e *env, user string) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		read := func(prompt string) (string, error) {
			fmt.Fprint(e.stderr, prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(e.stderr)
			return string(b), err
		}
		p1, err := read("password for " + user + ": ")
		if err != nil {
			return "", err
		}
		p2, err := read("again: ")
		if err != nil {
			return "", err
		}
		if p1 != p2 {
			return "", errors.New("the two passwords differ")
		}
		return p1, nil
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password on standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}
