# ''\ followed by other chars yields the char
''a''\qb''\\c''
