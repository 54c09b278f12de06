# application of selected functions with selected args
s: s.f s.a.b s.c (s.d s.e) s.g.h
