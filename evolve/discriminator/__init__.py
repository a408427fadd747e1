"""The learned discriminator (design.md section 7): programs encoded as graphs (encoding), a GPS graph
network with an antisymmetric pair head (model), online training from a replay buffer (training), and
the Predictor that puts them together (online)."""
