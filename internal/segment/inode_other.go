//go:build !unix

package segment

import "io/fs"

// inode is 0 where the platform has none, as object_store's get_inode.
func inode(fs.FileInfo) uint64 { return 0 }
