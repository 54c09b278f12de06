# quoted attribute names with spaces and symbols
{ "a b" = 1; "with.dot" = 2; "" = 3; "1x" = 4; }
