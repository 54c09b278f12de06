# URI literals evaluate to strings
[ http://x.org/a?b=c https://example.com/p/q.tar.gz mailto:me@example.org ]
