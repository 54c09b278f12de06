# empty indented strings
[ '''' ''
'' ''  '' ]
