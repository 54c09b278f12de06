# ! binds looser than ? and tighter than &&
s: !s ? a && !s.b || !s ? c.d
