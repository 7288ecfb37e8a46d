package main

// The messages' wire codec, by the protobuf library the generated code is made for.
//
// grpc-go before 1.35 (Debian 12 ships 1.33) marshals with the older github.com/golang/protobuf,
// which Debian 12 ships at 1.3.5, from before the messages that protoc-gen-go makes now: it
// cannot read them. Registering this codec under grpc's own name "proto" makes every grpc-go
// release, old or new, use google.golang.org/protobuf for the agent's messages.

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"
)

type codec struct{}

func (codec) Marshal(v interface{}) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("codec: %T is not a protobuf message", v)
	}
	return proto.Marshal(m)
}

func (codec) Unmarshal(data []byte, v interface{}) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("codec: %T is not a protobuf message", v)
	}
	return proto.Unmarshal(data, m)
}

func (codec) Name() string { return "proto" }

func init() { encoding.RegisterCodec(codec{}) }
