"""NetworkPolicy (networking.k8s.io/v1): the policies as data (`policy`), their meaning as a pure function
(`evaluate`: who may reach whom, which policies decide), and their enforcement in each node's netfilter
tables (rendered as data by a policy renderer, applied with the node's iptables sync)."""
