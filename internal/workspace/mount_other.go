//go:build !linux

package workspace

import (
	"context"
	"errors"
)

const msgNoMount = "overlay mounts need Linux"

func mountOverlay(opts, dir string) error { return errors.New(msgNoMount) }

func unmount(ctx context.Context, dir string) error { return errors.New(msgNoMount) }

// mountPoints is empty: workspaces are never mounted here.
func mountPoints() ([]string, error) { return nil, nil }
