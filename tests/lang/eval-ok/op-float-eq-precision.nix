# float equality is exact IEEE comparison
[ (0.1 + 0.2 == 0.3) (0.5 + 0.25 == 0.75) (1.0 / 3 * 3 == 1) ]
