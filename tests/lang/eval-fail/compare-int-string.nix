# comparing incomparable types
1 < "a"
