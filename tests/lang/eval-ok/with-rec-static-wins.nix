# rec bindings are static and shadow an inner with
rec { a = 1; b = with { a = 2; c = 3; }; [ a c ]; }
