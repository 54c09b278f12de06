# select with or default containing applications
s: f: s.a.b or f s.c or 1
