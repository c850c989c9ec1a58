# occfs-controld: sessions, denylist, kill-switch; the broker control link.
