module example.com/fetch

go 1.26.0
