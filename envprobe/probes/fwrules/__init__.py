"""Firewall rule engines for the ``firewall`` probe: one module per backend (nft, iptables, firewalld, ufw,
windows) over a shared evaluator (engine), the Linux snapshot script (linux) and the query (analyze)."""
