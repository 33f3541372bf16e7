//! Sync files: real fds carrying one fence. (Placeholder: being written.)
