# calling a function without a required formal
({ a, b }: a + b) { a = 1; }
