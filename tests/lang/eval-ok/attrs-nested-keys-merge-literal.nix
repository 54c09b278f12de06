# nested path merges into a literal set defined earlier or later
{ a = { x = 1; }; a.y = 2; b.y = 2; b = { x = 1; }; }
