package vfs

import "io/fs"

func errNotExist() error { return fs.ErrNotExist }
