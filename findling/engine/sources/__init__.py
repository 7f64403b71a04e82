"""Walking the watched folders, the exclusion rules, reconciling disk with the index, and the watchdog watcher."""
