import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.fixture.ts';

/** A client socket and everything it has read so far. */
type Client = { readonly socket: Socket; readonly read: () => string; readonly ended: Promise<string> };

/** How long a test waits to see that nothing arrives: a proxy that let bytes through would deliver them well within it. */
const quietMs = 300;

describe('the TCP proxy fixture, between real sockets', () => {
  let echo: Server;
  /** What the server has received, and the server's end of each connection, in order of arrival. */
  const received: string[] = [];
  const serverSides: Socket[] = [];
  let proxy: TcpProxy;

  before(async () => {
    echo = createServer((socket) => {
      const index = serverSides.push(socket) - 1;
      received[index] = '';
      socket.on('data', (chunk) => {
        received[index] += chunk.toString();
        socket.write(chunk);
      });
      socket.on('error', () => undefined);
    });
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    proxy = await startTcpProxy({ target: { host: '127.0.0.1', port: (echo.address() as AddressInfo).port } });
  });
  after(async () => {
    await proxy.close();
    for (const socket of serverSides) socket.destroy();
    await new Promise((resolve) => echo.close(resolve));
  });

  async function open(): Promise<Client> {
    const socket = connect(proxy.port, proxy.host);
    let read = '';
    socket.on('data', (chunk) => {
      read += chunk.toString();
    });
    const ended = new Promise<string>((resolve) => {
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      socket.on('close', () => resolve('closed'));
    });
    await once(socket, 'connect');
    return { socket, read: () => read, ended };
  }

  async function until(what: string, condition: () => boolean): Promise<void> {
    for (let tries = 0; !condition(); tries++) {
      if (tries > 1_000) assert.fail(`never came: ${what}`);
      await sleep(10);
    }
  }

  it('passes bytes both ways', async () => {
    const client = await open();
    client.socket.write('hello');
    await until('the echo', () => client.read() === 'hello');
    assert.equal(proxy.connections(), 1);
    client.socket.destroy();
    await until('the connection gone', () => proxy.connections() === 0);
  });

  it('refuse: resets open connections and every new one, then lets them through again once restored', async () => {
    const before = await open();
    before.socket.write('a');
    await until('the echo', () => before.read() === 'a');
    const serverSide = serverSides.at(-1)!;
    const serverEnded = new Promise((resolve) => serverSide.on('close', resolve));

    await proxy.cut('refuse');
    assert.equal(await before.ended, 'ECONNRESET');
    await serverEnded;
    const during = connect(proxy.port, proxy.host);
    const failed = await new Promise<string>((resolve) => {
      during.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      during.on('close', () => resolve('closed'));
    });
    assert.match(failed, /^(ECONNRESET|closed)$/);
    assert.equal(proxy.connections(), 0);

    await proxy.restore();
    const afterwards = await open();
    afterwards.socket.write('b');
    await until('the echo', () => afterwards.read() === 'b');
    afterwards.socket.destroy();
  });

  it('blackhole: open and new connections hear nothing, and get everything once restored, on the same connections', async () => {
    const open1 = await open();
    open1.socket.write('x');
    await until('the echo', () => open1.read() === 'x');
    const server1 = serverSides.length - 1;

    await proxy.cut('blackhole');
    open1.socket.write('y');
    const held = await open();
    held.socket.write('z');
    await sleep(quietMs);
    assert.equal(received[server1], 'x', 'nothing reached the server');
    assert.equal(serverSides.length, server1 + 1, 'the new connection did not reach the server');
    assert.equal(open1.read(), 'x');
    assert.equal(proxy.connections(), 2);

    await proxy.restore();
    await until('the echoes', () => open1.read() === 'xy' && held.read() === 'z');
    assert.equal(received[server1], 'xy');
    assert.equal(open1.socket.destroyed, false);
    open1.socket.destroy();
    held.socket.destroy();
    await until('the connections gone', () => proxy.connections() === 0);
  });

  it('blackhole: a side that closes during the cut is heard of by the other only once restored', async () => {
    const client = await open();
    client.socket.write('q');
    await until('the echo', () => client.read() === 'q');
    const serverSide = serverSides.at(-1)!;
    let serverClosed = false;
    serverSide.on('close', () => {
      serverClosed = true;
    });

    await proxy.cut('blackhole');
    client.socket.destroy();
    await sleep(quietMs);
    assert.equal(serverClosed, false, 'the server has not heard of it');

    await proxy.restore();
    await until('the server to hear of it', () => serverClosed);
    await until('the connection gone', () => proxy.connections() === 0);
  });

  it('close ends every connection, held ones included', async () => {
    const other = await startTcpProxy({ target: `postgres://someone@127.0.0.1:${(echo.address() as AddressInfo).port}/db?sslmode=disable` });
    assert.equal(other.url, `postgres://someone@127.0.0.1:${other.port}/db?sslmode=disable`);
    const socket = connect(other.port, other.host);
    await once(socket, 'connect');
    const ended = new Promise((resolve) => socket.on('close', resolve).on('error', () => undefined));
    await other.cut('blackhole');
    await other.close();
    await ended;
    assert.equal(other.connections(), 0);
  });
});
