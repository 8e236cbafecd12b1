"""One module per dialog; every writing dialog shows its operation's plan before it runs."""
