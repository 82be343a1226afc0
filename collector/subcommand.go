package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/fleetwatt/fleetwatt/collector/internal/config"
)

// subcommand is the frame the query subcommands (report, rollup, plan) share: a flag set with
// --config and the --influx-* flags, parsing, and errors printed as
// "fleetwatt-collector NAME: ..." with exit code 2 for a bad command line.
type subcommand struct {
	name       string
	fs         *flag.FlagSet
	configPath *string
	overrides  map[string]func(*config.Config, string)
	stderr     io.Writer
}

func newSubcommand(name, usage string, stderr io.Writer) *subcommand {
	fs := flag.NewFlagSet("fleetwatt-collector "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return &subcommand{
		name:       name,
		fs:         fs,
		configPath: fs.String("config", "", "configuration file (YAML), for the influx settings and regions_file"),
		overrides:  configFlags(fs, false),
		stderr:     stderr,
	}
}

// regionsFlag adds --regions, overriding the configuration's regions_file.
func (c *subcommand) regionsFlag() {
	c.fs.String("regions", "", "CSV file of regional factors overriding the shipped table (regions_file)")
	c.overrides["regions"] = func(cfg *config.Config, v string) { cfg.RegionsFile = v }
}

// parse parses args. done reports that the command is over (--help, a bad flag, an
// argument), with its exit code.
func (c *subcommand) parse(args []string) (code int, done bool) {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if c.fs.NArg() > 0 {
		return c.fail(2, fmt.Errorf("unexpected argument %q", c.fs.Arg(0))), true
	}
	return 0, false
}

// config loads the configuration file and applies the flags, and reads the InfluxDB token.
func (c *subcommand) config() (config.Config, string, error) {
	cfg, err := loadConfig(*c.configPath, c.fs, c.overrides)
	if err != nil {
		return cfg, "", err
	}
	token, err := cfg.Influx.Token(os.Getenv)
	return cfg, token, err
}

// fail prints err and returns code.
func (c *subcommand) fail(code int, err error) int {
	fmt.Fprintf(c.stderr, "fleetwatt-collector %s: %v\n", c.name, err)
	return code
}
