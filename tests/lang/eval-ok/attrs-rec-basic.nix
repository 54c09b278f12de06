# rec sets let attributes refer to each other
rec { a = 1; b = a + 1; c = b * 10; }
