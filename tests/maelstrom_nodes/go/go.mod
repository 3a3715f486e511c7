module maelstromnode

go 1.21
