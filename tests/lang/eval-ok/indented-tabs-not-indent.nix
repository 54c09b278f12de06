# tabs are not indentation, only spaces are stripped
''
	foo
	  bar
''
