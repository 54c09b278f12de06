# adding an integer and a string
1 + "a"
