"""Jobs from the server's side: create them, send them to a worker by task name, cancel, list."""
