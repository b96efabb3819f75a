"""The operators' web console: the board of open notifications (live), a notification's story, accounts."""
