"""The learned discriminator (design.md section 7): programs encoded as graphs (encoding), a GPS graph
network with an antisymmetric pair head (model), the evaluated programs it learns from (replay), online
training (training), and the Predictor that puts them together (online), which loads the network only
when it is built."""
