# rec attributes referencing nested attributes and order independence
rec { x = y.z + 1; y.z = 10; w = { inner = x; }; }
